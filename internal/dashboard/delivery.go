package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"
)

// header is one header line for display.
type header struct {
	Name, Value string
	Masked      bool
}

// sensitive reports whether a header's value is a credential or a
// signature: shown masked, never in the page.
func sensitive(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"signature", "authorization", "cookie", "token", "secret", "api-key", "apikey", "password"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// mask keeps a scheme prefix such as "v1," or "Bearer " and hides the rest.
func mask(v string) string {
	prefix := ""
	for _, p := range []string{"v1,", "v1a,", "Bearer ", "Basic ", "sha256="} {
		if strings.HasPrefix(v, p) {
			prefix = p
			break
		}
	}
	n := utf8.RuneCountInString(v) - len(prefix)
	return fmt.Sprintf("%s•••••••• (%d characters hidden)", prefix, n)
}

func headerRows(h map[string]string) []header {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]header, 0, len(keys))
	for _, k := range keys {
		v := h[k]
		if sensitive(k) {
			out = append(out, header{Name: k, Value: mask(v), Masked: true})
			continue
		}
		out = append(out, header{Name: k, Value: v})
	}
	return out
}

// pretty indents JSON; other text is returned as it is. The template
// escapes the result.
func pretty(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return s
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(t), "", "  "); err != nil {
		return s
	}
	return buf.String()
}

// attemptView is one attempt for display.
type attemptView struct {
	Attempt
	Request, Response []header
	Body              string
	Level             string
}

type deliveryData struct {
	D        *Delivery
	Payload  string
	Attempts []attemptView
	Endpoint string
	Self     string
}

func outcomeLevel(o string) string {
	switch o {
	case StateDelivered:
		return "ok"
	case StateRetrying:
		return "warn"
	case StateDead, "Blocked":
		return "bad"
	}
	return "off"
}

func (s *Server) delivery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, err := s.opts.Log.Delivery(r.Context(), id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read delivery %s: %w", id, err), "/endpoints")
		return
	}
	data := deliveryData{D: d, Payload: pretty(d.Body), Endpoint: endpointPath(d.Namespace, d.Endpoint), Self: r.URL.RequestURI()}
	// Newest attempt first: that is what someone debugging looks for.
	for i := len(d.Attempts) - 1; i >= 0; i-- {
		a := d.Attempts[i]
		data.Attempts = append(data.Attempts, attemptView{
			Attempt: a, Request: headerRows(a.RequestHeaders), Response: headerRows(a.ResponseHeaders),
			Body: pretty(a.ResponseBody), Level: outcomeLevel(a.Outcome),
		})
	}
	s.render(w, r, http.StatusOK, "delivery", "Delivery "+d.ID, "endpoints", data)
}
