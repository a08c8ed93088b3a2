package sealed

import (
	"context"
	"errors"
	"fmt"

	"github.com/rehook/rehook/store"
)

// rotateBatch is how many secrets Rotate reads at a time.
const rotateBatch = 100

// RotateResult counts what Rotate did.
type RotateResult struct {
	// Checked is the number of stored secrets looked at.
	Checked int
	// Resealed were sealed anew under the current key: plaintext ones and
	// those sealed under an older key.
	Resealed int
	// Changed were changed by someone else while Rotate ran and are left
	// as that writer stored them.
	Changed int
	// Failed could not be opened with any key of the ring; FailedIDs names
	// the first of their webhooks.
	Failed    int
	FailedIDs []int64
}

// maxFailedIDs bounds RotateResult.FailedIDs.
const maxFailedIDs = 20

// Rotate seals under the current key of keys every secret of s (a store
// that is not wrapped: it reads and writes stored forms) that is not sealed
// under it yet. A secret written meanwhile by a running rehook is left as
// that process stored it. It needs a keyring with a current key, and stops
// at the first store error; secrets it cannot open are counted and skipped.
// Running it again after it finished does nothing.
func Rotate(ctx context.Context, s store.Store, keys *Keyring) (RotateResult, error) {
	var res RotateResult
	if !keys.Encrypts() {
		return res, errors.New("rotating secrets needs a current encryption key")
	}

	for after := int64(0); ; {
		batch, err := s.ListWebhookSecrets(ctx, after, rotateBatch)
		if err != nil {
			return res, err
		}
		if len(batch) == 0 {
			return res, nil
		}

		for _, ws := range batch {
			after = ws.WebhookID
			res.Checked++
			if err := reseal(ctx, s, keys, ws, &res); err != nil {
				return res, err
			}
		}
	}
}

// reseal seals one stored secret under the current key, if it is not yet.
func reseal(ctx context.Context, s store.Store, keys *Keyring, ws store.WebhookSecret,
	res *RotateResult) error {
	secret, err := keys.Open(ws.Secret)
	if err != nil {
		res.Failed++
		if len(res.FailedIDs) < maxFailedIDs {
			res.FailedIDs = append(res.FailedIDs, ws.WebhookID)
		}
		return nil
	}
	if id, sealed := SealedBy(ws.Secret); sealed && id == keys.CurrentID() {
		return nil
	}

	next, err := keys.Seal(secret)
	if err != nil {
		return err
	}

	err = s.ReplaceWebhookSecret(ctx, ws.WebhookID, ws.Secret, next)
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		res.Changed++
		return nil
	case err != nil:
		return fmt.Errorf("reseal secret of webhook %d: %w", ws.WebhookID, err)
	}
	res.Resealed++
	return nil
}
