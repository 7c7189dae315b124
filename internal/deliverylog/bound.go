package deliverylog

import (
	"encoding/json"
	"unicode/utf8"

	datav1 "github.com/mira/mira-operator/api/data/v1alpha1"
)

// Record size bounds. A record must always fit one NATS message: a record
// that cannot be stored cannot settle its delivery.
const (
	// DefaultMaxRecordBytes is a record's byte budget when the connection's
	// max payload is not known: the NATS default max_payload (1 MiB) minus
	// room for the KV message's own headers.
	DefaultMaxRecordBytes = 1<<20 - 16<<10
	// MinMaxRecordBytes is the smallest budget a Store accepts.
	MinMaxRecordBytes = 16 << 10
	// maxAttemptError bounds an attempt's error text in the record.
	maxAttemptError = 2 << 10
)

// Append adds an attempt to a record and keeps the record within maxBytes
// (see Bound).
func Append(r *datav1.Delivery, a datav1.Attempt, maxBytes int) {
	a.Error = truncateUTF8(a.Error, maxAttemptError)
	r.Attempts = append(r.Attempts, a)
	Bound(r, maxBytes)
}

// Bound keeps a record within maxBytes of JSON: it keeps the newest
// datav1.MaxLoggedAttempts attempts in full and folds older ones into
// OlderAttempts (count, first and last time, last status codes). If the
// record is still too large it folds further attempts, down to the newest
// one, then cuts that attempt's response body and headers, and as a last
// resort drops the event body (BodyOmitted). State, counts and reason are
// never dropped, so the outcome can always be recorded.
func Bound(r *datav1.Delivery, maxBytes int) {
	if maxBytes < MinMaxRecordBytes {
		maxBytes = MinMaxRecordBytes
	}
	for len(r.Attempts) > datav1.MaxLoggedAttempts {
		foldOldest(r)
	}
	size := encodedSize(r)
	for size > maxBytes && len(r.Attempts) > 1 {
		foldOldest(r)
		size = encodedSize(r)
	}
	if size > maxBytes && len(r.Attempts) == 1 {
		a := &r.Attempts[0]
		over := size - maxBytes
		if over < len(a.ResponseBody) {
			// JSON escaping can make the encoded body longer than the
			// text: cut a little more than the excess, then re-check.
			a.ResponseBody = truncateUTF8(a.ResponseBody, len(a.ResponseBody)-over-over/4)
		} else {
			a.ResponseBody = ""
		}
		if size = encodedSize(r); size > maxBytes {
			a.ResponseBody, a.ResponseHeaders, a.RequestHeaders = "", nil, nil
			size = encodedSize(r)
		}
	}
	if size > maxBytes {
		r.Body, r.BodyOmitted = "", true
		size = encodedSize(r)
	}
	if size > maxBytes {
		for len(r.Attempts) > 0 {
			foldOldest(r)
		}
	}
}

// foldOldest moves the oldest kept attempt into the summary.
func foldOldest(r *datav1.Delivery) {
	a := r.Attempts[0]
	r.Attempts = r.Attempts[1:]
	s := r.OlderAttempts
	if s == nil {
		s = &datav1.AttemptSummary{First: a.Time}
		r.OlderAttempts = s
	}
	s.Count++
	s.Last = a.Time
	s.LastCodes = append(s.LastCodes, a.StatusCode)
	if len(s.LastCodes) > datav1.MaxSummaryCodes {
		s.LastCodes = s.LastCodes[len(s.LastCodes)-datav1.MaxSummaryCodes:]
	}
}

func encodedSize(r *datav1.Delivery) int {
	b, err := json.Marshal(r)
	if err != nil {
		return 0
	}
	return len(b)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
