package dashboard

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var funcs = template.FuncMap{
	"utc":          utc,
	"ago":          ago,
	"endpointPath": endpointPath,
	"deliveryPath": deliveryPath,
	"reportPath":   func(id string) string { return "/reports/" + url.PathEscape(id) },
	"codeLevel":    codeLevel,
	"stateLevel":   outcomeLevel,
	"join":         strings.Join,
	"deref":        func(t *time.Time) time.Time { return *t },
	"metaTime":     func(t *metav1.Time) time.Time { return t.Time },
	"float":        func(f float64, prec int) string { return fmt.Sprintf("%.*f", prec, f) },
	"short":        short,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	},
	"seconds": func(s float64) string { return (time.Duration(s * float64(time.Second))).Round(time.Second).String() },
}

// utc formats a time for a datetime attribute and a title.
func utc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ago is a short relative time against now.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// codeLevel colours an HTTP status: 2xx ok, 4xx/5xx bad, none off.
func codeLevel(v any) string {
	var code int
	switch c := v.(type) {
	case int:
		code = c
	case int32:
		code = int(c)
	}
	switch {
	case code == 0:
		return "off"
	case code >= 200 && code < 300:
		return "ok"
	case code == 429 || (code >= 300 && code < 400):
		return "warn"
	}
	return "bad"
}

// short keeps an id readable in a table; the full id is in the link.
func short(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// human writes a duration the way people do: 24h, 1h30m, 15s.
func human(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
