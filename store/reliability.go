package store

// Reasons an attempt is recorded as interrupted (Attempt.Error of an
// Attempt with Interrupted set).
const (
	// InterruptedLeaseExpired: the lease of the worker delivering the
	// execution ran out with no attempt recorded, so the worker died, or
	// lost the database, mid-delivery. The next claim records it.
	InterruptedLeaseExpired = "interrupted: worker lease expired"
	// InterruptedShutdown: the worker was stopped while delivering, its
	// grace period ran out, and it handed the execution back.
	InterruptedShutdown = "interrupted: worker shut down"
)
