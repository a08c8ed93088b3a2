package rowprep

import "github.com/rehook/rehook/store"

// Retriggers returns, for each original, the pending execution that
// re-sends it: same webhook, registry, trigger, delivery id and request
// body, RetriggerOf the original, recorded against url.
func Retriggers(originals []store.Execution, url string) []*store.Execution {
	out := make([]*store.Execution, len(originals))
	for i, o := range originals {
		out[i] = &store.Execution{
			WebhookID:   o.WebhookID,
			RegistryID:  o.RegistryID,
			TriggerType: o.TriggerType,
			RetriggerOf: o.ID,
			DeliveryID:  o.DeliveryID,
			RequestURL:  url,
			RequestBody: o.RequestBody,
		}
	}
	return out
}
