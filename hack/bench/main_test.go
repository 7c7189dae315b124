package main

import (
	"strings"
	"testing"
)

func TestSpliceKeepsOtherSections(t *testing.T) {
	blocks := map[string]string{
		headerName:   startMarker(headerName) + "\nnew header\n" + endMarker(headerName) + "\n",
		"controller": startMarker("controller") + "\nnew controller\n" + endMarker("controller") + "\n",
		"delivery":   startMarker("delivery") + "\nnew delivery\n" + endMarker("delivery") + "\n",
	}
	doc := startMarker(headerName) + "\nold header\n" + endMarker(headerName) + "\n\nhand-written notes\n\n" +
		startMarker("controller") + "\nold controller\n" + endMarker("controller") + "\n\n" +
		startMarker("ingest") + "\nold ingest\n" + endMarker("ingest") + "\n"

	got, err := splice(doc, []string{headerName, "controller", "delivery"}, blocks)
	if err != nil {
		t.Fatal(err)
	}
	want := startMarker(headerName) + "\nnew header\n" + endMarker(headerName) + "\n\nhand-written notes\n\n" +
		startMarker("controller") + "\nnew controller\n" + endMarker("controller") + "\n\n" +
		startMarker("ingest") + "\nold ingest\n" + endMarker("ingest") + "\n\n" +
		startMarker("delivery") + "\nnew delivery\n" + endMarker("delivery") + "\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Splicing again is stable.
	again, err := splice(got, []string{headerName, "controller", "delivery"}, blocks)
	if err != nil || again != got {
		t.Fatalf("second splice changed the document (err %v):\n%s", err, again)
	}
}

func TestSpliceRefusesBrokenMarkers(t *testing.T) {
	blocks := map[string]string{"controller": "x\n"}
	for _, doc := range []string{
		startMarker("controller") + "\nno end\n",
		endMarker("controller") + "\n",
		strings.Repeat(startMarker("controller")+"\n"+endMarker("controller")+"\n", 2),
	} {
		if _, err := splice(doc, []string{"controller"}, blocks); err == nil {
			t.Errorf("splice accepted %q", doc)
		}
	}
}

func TestResourceOf(t *testing.T) {
	for path, want := range map[string][2]string{
		"/api/v1/namespaces/ns/secrets":                                           {"secrets", ""},
		"/api/v1/namespaces/ns/secrets/ep-0001-signing-secret":                    {"secrets", ""},
		"/apis/platform.mira.io/v1alpha1/namespaces/ns/webhookendpoints/x/status": {"webhookendpoints", "status"},
		"/apis/events.k8s.io/v1/namespaces/ns/events":                             {"events", ""},
		"/api/v1/namespaces":                                                      {"namespaces", ""},
		"/apis/platform.mira.io/v1alpha1/webhookendpoints":                        {"webhookendpoints", ""},
	} {
		res, sub := resourceOf(path)
		if res != want[0] || sub != want[1] {
			t.Errorf("resourceOf(%q) = %q, %q; want %q, %q", path, res, sub, want[0], want[1])
		}
	}
	if k := writeKind(resourceOf("/apis/platform.mira.io/v1alpha1/namespaces/ns/webhookendpoints/x/status")); k != kindStatus {
		t.Errorf("status write classified as %q", k)
	}
}
