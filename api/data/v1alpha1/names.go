package v1alpha1

import "strings"

// NameFromID maps a delivery or report id ("dlv_<hex>", "rpt_<hex>") to a
// valid object name ("dlv-<hex>"): the first "_" becomes "-". IDFromName
// reverses it for the prefixes the receiver generates.
func NameFromID(id string) string {
	return strings.ToLower(strings.Replace(id, "_", "-", 1))
}

// IDFromName reverses NameFromID for "dlv-" and "rpt-" names; other names
// are returned unchanged (ids published without a prefix are already names).
func IDFromName(name string) string {
	for _, p := range []string{"dlv", "rpt"} {
		if rest, ok := strings.CutPrefix(name, p+"-"); ok {
			return p + "_" + rest
		}
	}
	return name
}
