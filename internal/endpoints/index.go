package endpoints

import "k8s.io/apimachinery/pkg/types"

// nsIndex is one namespace's endpoints and, per event type, the ones
// subscribed to it. The Registry's lock guards it.
type nsIndex struct {
	members map[types.UID]*Endpoint
	// byType caches Subscribed per event type; dropped (nil) when a member
	// is added or removed or a member's spec.events changes.
	byType map[string][]*Endpoint
}

func (x *nsIndex) add(e *Endpoint) {
	x.members[e.UID] = e
	x.stale()
}

func (x *nsIndex) remove(uid types.UID) {
	delete(x.members, uid)
	x.stale()
}

func (x *nsIndex) stale() { x.byType = nil }

// subscribed returns (building and caching) the members subscribed to an
// event type.
func (x *nsIndex) subscribed(eventType string) []*Endpoint {
	if list, ok := x.byType[eventType]; ok {
		return list
	}
	var list []*Endpoint
	for _, e := range x.members {
		if w := e.Object(); w != nil && w.Subscribes(eventType) {
			list = append(list, e)
		}
	}
	if x.byType == nil {
		x.byType = map[string][]*Endpoint{}
	}
	x.byType[eventType] = list
	return list
}
