// Package v1alpha1 holds the types clients read from the receiver: the
// delivery log (Delivery, Attempt). They are plain Go structs with the JSON
// encoding stored in JetStream and served by the receiver's API, so the CLI,
// the dashboard and tests import them without pulling in a server.
//
// The group is data.platform.mira.io; a later version serves these types as
// an aggregated API.
package v1alpha1

// GroupName is the API group these types will be served under.
const GroupName = "data.platform.mira.io"
