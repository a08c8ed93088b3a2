package api

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// keyLimiter is a token bucket per API key, in this process: each key may
// make Config.RateLimit requests a second on average and Config.RateBurst
// at once. A bucket left unused long enough to fill up again is dropped,
// since a new one is the same, so memory grows with the keys in use, not
// with the keys ever seen.
type keyLimiter struct {
	limit rate.Limit
	burst int
	// idle is how long a bucket must go unused before it is dropped: at
	// least the time it takes to fill up.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[int64]*bucket
	lastSweep time.Time
}

type bucket struct {
	limiter  *rate.Limiter
	lastUsed time.Time
}

// minIdle is the shortest time a bucket is kept after its last use.
const minIdle = time.Minute

func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	burst = max(burst, 1)
	fill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &keyLimiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		idle:    max(fill, minIdle),
		buckets: map[int64]*bucket{},
	}
}

// take takes a token from the bucket of key at now. It returns 0 when it
// got one, else how long until one is there (taking nothing).
func (l *keyLimiter) take(key int64, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.lastUsed = now

	r := b.limiter.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait
	}
	return 0
}

// sweep drops the buckets unused for l.idle, at most once per l.idle.
func (l *keyLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.idle {
		return
	}
	l.lastSweep = now
	for key, b := range l.buckets {
		if now.Sub(b.lastUsed) >= l.idle {
			delete(l.buckets, key)
		}
	}
}

// size is the number of buckets held.
func (l *keyLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limitRate answers 429, with Retry-After, to a key that has used up its
// bucket. It runs after authenticate, so only valid keys have buckets.
func (a *API) limitRate(c *gin.Context) {
	if a.limiter == nil {
		c.Next()
		return
	}

	wait := a.limiter.take(callerKey(c).ID, a.now())
	if wait > 0 {
		seconds := retryAfterSeconds(wait)
		abort(c, &apiError{status: http.StatusTooManyRequests, retryAfter: seconds,
			message: fmt.Sprintf("rate limit of this API key exceeded; retry in %d s", seconds)})
		return
	}
	c.Next()
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}

// pendingRetryAfter is the Retry-After, in seconds, of a retrigger refused
// because its webhook has too many pending executions.
const pendingRetryAfter = 10

// pendingRoom is how many more pending executions the webhook may have
// under Config.MaxPendingPerWebhook; with no limit, math.MaxInt. At the
// limit it is a 429 with Retry-After.
func (a *API) pendingRoom(c *gin.Context, webhookID int64) (int, error) {
	if a.cfg.MaxPendingPerWebhook <= 0 {
		return math.MaxInt, nil
	}

	n, err := a.store.CountPendingForWebhook(c.Request.Context(), webhookID)
	if err != nil {
		return 0, err
	}
	if n >= a.cfg.MaxPendingPerWebhook {
		return 0, &apiError{status: http.StatusTooManyRequests, retryAfter: pendingRetryAfter,
			message: fmt.Sprintf("webhook has %d pending executions, the most allowed; "+
				"retry once some are delivered", a.cfg.MaxPendingPerWebhook),
			details: &errorDetails{Field: "webhook_identifier",
				Reason: "too many pending executions"}}
	}
	return a.cfg.MaxPendingPerWebhook - n, nil
}
