package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hibiken/asynq"
)

// TestWebhookDeletedDuringDelivery deletes the webhook, and its executions
// with it, while an attempt is at the receiver: the attempt ends the task
// without an error to retry, since there is nothing left to record.
func TestWebhookDeletedDuringDelivery(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	}))
	defer srv.Close()

	e := newEnv(t, HandlerConfig{}, false)
	hook := e.webhook("doomed", srv.URL)
	x := e.execution(hook, "{}", false)
	task := asynq.NewTask(TypeDeliver, mustJSON(t, Payload{ExecutionID: x.ID}))

	done := make(chan error, 1)
	go func() { done <- e.handler.ProcessTask(context.Background(), task) }()
	<-arrived
	if err := e.store.DeleteWebhook(context.Background(), hook.ID); err != nil {
		t.Fatal(err)
	}
	close(release)

	if err := <-done; err != nil {
		t.Errorf("task of a deleted execution: got error %v, want none (nothing to retry)", err)
	}
	if _, err := e.store.GetExecutionByID(context.Background(), x.ID); err == nil {
		t.Errorf("execution %d was recorded again after its webhook was deleted", x.ID)
	}
}
