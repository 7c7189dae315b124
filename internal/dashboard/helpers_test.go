package dashboard_test

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"testing"
)

var errNotYet = errors.New("not yet")

var tokenRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// formToken reads the CSRF token from a page's forms.
func formToken(t *testing.T, page string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no form token")
	}
	return m[1]
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
