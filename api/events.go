package api

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rehook/rehook/store"
)

// artifactJSON describes the artifact an event is about.
type artifactJSON struct {
	Name        string `json:"name"`
	Version     string `json:"version,omitempty"`
	Tag         string `json:"tag,omitempty"`
	Digest      string `json:"digest,omitempty"`
	URL         string `json:"url,omitempty"`
	PackageType string `json:"packageType,omitempty"`
	MediaType   string `json:"mediaType,omitempty"`
}

// principalJSON says who caused an event. Every field is optional.
type principalJSON struct {
	ID          json.Number `json:"id,omitempty"`
	UserName    string      `json:"userName,omitempty"`
	DisplayName string      `json:"displayName,omitempty"`
	Email       string      `json:"email,omitempty"`
	Type        string      `json:"type,omitempty"`
}

type artifactEventRequest struct {
	Trigger   store.Trigger  `json:"trigger"`
	Artifact  artifactJSON   `json:"artifact"`
	Principal *principalJSON `json:"principal"`
}

// deliveryBody is what a receiver is sent for an event. It is rendered once,
// stored, and re-sent verbatim on every attempt and retrigger.
type deliveryBody struct {
	Trigger   store.Trigger    `json:"trigger"`
	Registry  deliveryRegistry `json:"registry"`
	Principal *principalJSON   `json:"principal,omitempty"`
	Artifact  artifactJSON     `json:"artifact"`
	Timestamp string           `json:"timestamp"`
}

type deliveryRegistry struct {
	Identifier  string `json:"identifier"`
	Ref         string `json:"ref"`
	PackageType string `json:"packageType"`
}

// Limits on artifact fields.
const maxArtifactFieldLen = 1024

func (r artifactEventRequest) validate() error {
	if !r.Trigger.Valid() {
		return invalid("trigger", "must be ARTIFACT_CREATION or ARTIFACT_DELETION",
			string(r.Trigger))
	}
	if strings.TrimSpace(r.Artifact.Name) == "" {
		return invalid("artifact.name", "required", "")
	}
	for field, v := range map[string]string{
		"artifact.name": r.Artifact.Name, "artifact.version": r.Artifact.Version,
		"artifact.tag": r.Artifact.Tag, "artifact.digest": r.Artifact.Digest,
		"artifact.url": r.Artifact.URL, "artifact.packageType": r.Artifact.PackageType,
		"artifact.mediaType": r.Artifact.MediaType,
	} {
		if len(v) > maxArtifactFieldLen {
			return invalid(field, "at most 1024 bytes", v)
		}
	}
	if r.Principal != nil && len(r.Principal.ID) > 64 {
		return invalid("principal.id", "at most 64 digits", string(r.Principal.ID))
	}
	return nil
}

type eventResult struct {
	Executions []executionJSON `json:"executions"`
}

// artifactEvent is POST /registry/{ref}/artifact-events: one pending
// execution per enabled webhook subscribed to the trigger.
func (a *API) artifactEvent(c *gin.Context, ref RegistryRef, _ []string) error {
	var req artifactEventRequest
	if err := decodeJSON(c, a.cfg.BodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return err
	}

	hooks, err := a.store.ListWebhooks(c.Request.Context(), reg.ID)
	if err != nil {
		return err
	}
	execs, err := a.fire(c, reg, hooks, req.Trigger, req.Artifact, req.Principal, nil)
	if err != nil {
		return err
	}
	out := eventResult{Executions: []executionJSON{}}
	for _, e := range execs {
		out.Executions = append(out.Executions, toExecutionJSON(e))
	}
	ok(c, http.StatusAccepted, out)
	return nil
}

// fire stores one pending execution per enabled webhook of hooks (those of
// reg) subscribed to trigger, and queues them. With eventKeys, an event seen before fires
// nothing and returns store.ErrDuplicateEvent.
func (a *API) fire(c *gin.Context, reg store.Registry, hooks []store.Webhook,
	trigger store.Trigger, artifact artifactJSON, principal *principalJSON,
	eventKeys []string) ([]store.Execution, error) {
	if artifact.PackageType == "" {
		artifact.PackageType = reg.PackageType
	}
	ref := RegistryRef{Scope: reg.Scope, Identifier: reg.Identifier}
	body, err := json.Marshal(deliveryBody{
		Trigger:   trigger,
		Registry:  deliveryRegistry{reg.Identifier, ref.String(), reg.PackageType},
		Principal: principal,
		Artifact:  artifact,
		Timestamp: a.now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return nil, err
	}

	var execs []*store.Execution
	byWebhook := map[int64]store.Webhook{}
	for _, h := range hooks {
		if !h.Enabled || !h.Fires(trigger) {
			continue
		}
		execs = append(execs, &store.Execution{
			WebhookID:   h.ID,
			RegistryID:  reg.ID,
			TriggerType: trigger,
			RequestURL:  h.URL,
			RequestBody: string(body),
		})
		byWebhook[h.ID] = h
	}
	if len(execs) == 0 && len(eventKeys) == 0 {
		return nil, nil
	}
	if err := a.store.CreateExecutions(c.Request.Context(), reg.ID, eventKeys, execs); err != nil {
		return nil, err
	}

	out := make([]store.Execution, 0, len(execs))
	for _, e := range execs {
		a.enqueue(c, *e, reg, byWebhook[e.WebhookID])
		out = append(out, *e)
	}
	return out, nil
}

// Content types the Distribution registry sends its notifications with.
var distributionContentTypes = map[string]bool{
	"application/vnd.docker.distribution.events.v2+json": true,
	"application/vnd.docker.distribution.events.v1+json": true,
	"application/json": true,
}

// distributionEnvelope is the notification body of the CNCF Distribution
// registry. Unknown fields are ignored: the registry adds them over time.
type distributionEnvelope struct {
	Events []distributionEvent `json:"events"`
}

type distributionEvent struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Size       int64  `json:"size"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		ID string `json:"id"`
	} `json:"request"`
	Actor struct {
		Name string `json:"name"`
	} `json:"actor"`
}

// manifestMediaTypes are the targets whose push creates an artifact. Blob
// pushes (layers, configs) are parts of one and are ignored.
var manifestMediaTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v1+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.oci.artifact.manifest.v1+json":             true,
}

// distributionResult counts what happened to each event of an envelope.
type distributionResult struct {
	Executions []executionJSON `json:"executions"`
	Accepted   int             `json:"accepted"`
	Ignored    int             `json:"ignored"`
	Duplicates int             `json:"duplicates"`
}

// distributionEvent is POST /registry/{ref}/artifact-events/distribution.
// A manifest push is an ARTIFACT_CREATION and a delete an ARTIFACT_DELETION;
// blob pushes, pulls and mounts are ignored. The registry re-sends on
// failure, so each event counts once, by its id; and a manifest delete
// arrives as two events of one request (by digest, then by tag), which count
// as one deletion.
func (a *API) distributionEvent(c *gin.Context, ref RegistryRef, _ []string) error {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || !distributionContentTypes[mt] {
		return &apiError{status: http.StatusUnsupportedMediaType,
			message: "expected a Distribution notification envelope",
			details: &errorDetails{Field: "Content-Type",
				Reason: "must be application/vnd.docker.distribution.events.v2+json or v1+json",
				Value:  clip(c.GetHeader("Content-Type"), 200)}}
	}
	var env distributionEnvelope
	dec := json.NewDecoder(c.Request.Body)
	err = dec.Decode(&env)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(a.cfg.BodyLimit)
		}
		return invalid("body", "not a notification envelope", "")
	}
	if err := env.validate(); err != nil {
		return err
	}
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return err
	}
	hooks, err := a.store.ListWebhooks(c.Request.Context(), reg.ID)
	if err != nil {
		return err
	}

	out := distributionResult{Executions: []executionJSON{}}
	for _, ev := range env.Events {
		trigger, keep, err := a.classifyDistribution(c, reg, ev)
		if err != nil {
			return err
		}
		if !keep {
			out.Ignored++
			continue
		}
		keys := []string{"event:" + ev.ID}
		if trigger == store.TriggerArtifactDeletion && ev.Request.ID != "" {
			keys = append(keys, "delete-request:"+ev.Request.ID)
		}
		artifact := artifactJSON{
			Name:      ev.Target.Repository,
			Version:   firstNonEmpty(ev.Target.Tag, ev.Target.Digest),
			Tag:       ev.Target.Tag,
			Digest:    ev.Target.Digest,
			URL:       ev.Target.URL,
			MediaType: ev.Target.MediaType,
		}
		var principal *principalJSON
		if ev.Actor.Name != "" {
			principal = &principalJSON{UserName: ev.Actor.Name, Type: "USER"}
		}

		execs, err := a.fire(c, reg, hooks, trigger, artifact, principal, keys)
		if errors.Is(err, store.ErrDuplicateEvent) {
			out.Duplicates++
			continue
		}
		if err != nil {
			return err
		}
		if trigger == store.TriggerArtifactCreation && ev.Target.Digest != "" {
			if err := a.store.PutEventKey(c.Request.Context(), reg.ID,
				manifestKey(ev.Target.Repository, ev.Target.Digest)); err != nil {
				return err
			}
		}
		out.Accepted++
		for _, e := range execs {
			out.Executions = append(out.Executions, toExecutionJSON(e))
		}
	}
	ok(c, http.StatusAccepted, out)
	return nil
}

// maxEnvelopeEvents is the most events one notification envelope may carry;
// a registry sends a handful at a time.
const maxEnvelopeEvents = 500

// validate checks every event before any is acted on, so that an envelope
// is refused whole rather than half done.
func (env distributionEnvelope) validate() error {
	if len(env.Events) > maxEnvelopeEvents {
		return invalid("events", "at most "+strconv.Itoa(maxEnvelopeEvents)+
			" events per envelope", strconv.Itoa(len(env.Events)))
	}
	if field, bad := findBadText(env); field != "" {
		return badText(field, bad)
	}
	for i, ev := range env.Events {
		field := "events[" + strconv.Itoa(i) + "]"
		if ev.ID == "" || len(ev.ID) > 256 {
			return invalid(field+".id", "required, at most 256 bytes", ev.ID)
		}
		for name, v := range map[string]string{
			"repository": ev.Target.Repository, "tag": ev.Target.Tag,
			"digest": ev.Target.Digest, "url": ev.Target.URL,
			"mediaType": ev.Target.MediaType, "request.id": ev.Request.ID,
			"actor.name": ev.Actor.Name,
		} {
			if len(v) > maxArtifactFieldLen {
				return invalid(field+"."+name, "at most 1024 bytes", v)
			}
		}
	}
	return nil
}

// classifyDistribution maps a notification event to a trigger, or says to
// ignore it. A delete event does not say whether it deleted a manifest or a
// blob (a layer): both carry only the repository and a digest. So a delete
// by digest counts as an artifact deletion only when rehook saw that digest
// pushed as a manifest of the repository; a delete that names a tag is one.
// A manifest pushed before rehook was listening and deleted by digest alone
// is therefore not reported, unless it had a tag: its untagging follows as a
// second event of the same request, which is reported.
func (a *API) classifyDistribution(c *gin.Context, reg store.Registry,
	ev distributionEvent) (store.Trigger, bool, error) {
	if ev.Target.Repository == "" {
		return "", false, nil
	}
	switch ev.Action {
	case "push":
		return store.TriggerArtifactCreation, manifestMediaTypes[ev.Target.MediaType], nil
	case "delete":
		if ev.Target.Tag != "" {
			return store.TriggerArtifactDeletion, true, nil
		}
		if ev.Target.Digest == "" {
			return "", false, nil
		}
		seen, err := a.store.HasEventKey(c.Request.Context(), reg.ID,
			manifestKey(ev.Target.Repository, ev.Target.Digest))
		return store.TriggerArtifactDeletion, seen, err
	}
	return "", false, nil
}

// manifestKey is the event key that records a manifest push.
func manifestKey(repository, digest string) string {
	return "manifest:" + repository + "@" + digest
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
