package scoring

// Transcript is a provider-neutral transcript: who spoke which words when.
// Parsers for the Recall.ai formats and the plain roleplay format produce it.
type Transcript struct {
	// Segments in the order the provider returned them. Each segment is one
	// speaker's continuous turn (Recall returns one entry per turn).
	Segments []Segment `json:"segments"`
}

// Segment is one participant's turn.
type Segment struct {
	// Speaker identifies the participant: a stable id (Recall's participant id
	// as a decimal string) or, when absent, the name.
	SpeakerID string `json:"speakerId"`
	// SpeakerName is the display name, when known.
	SpeakerName string `json:"speakerName,omitempty"`
	// IsHost is true when the provider marked this participant as host.
	IsHost bool `json:"isHost,omitempty"`
	// Words spoken in this segment, in order.
	Words []Word `json:"words"`
}

// Word is one transcribed word with times in seconds since recording start.
// End is zero when the provider gave no end time.
type Word struct {
	// Text as transcribed, punctuation included.
	Text string `json:"text"`
	// Start is when the word starts.
	Start float64 `json:"start"`
	// End is when the word ends, or 0 when unknown.
	End float64 `json:"end"`
}

// Template is the rubric, copied from a ScoringTemplate so this package does
// not depend on the Kubernetes API types.
type Template struct {
	// Namespace of the ScoringTemplate.
	Namespace string `json:"namespace"`
	// Name of the ScoringTemplate.
	Name string `json:"name"`
	// Generation of the ScoringTemplate (metadata.generation).
	Generation int64 `json:"generation"`
	// PassingScore is the overall score (0–100) a report needs to pass.
	PassingScore int `json:"passingScore"`
	// Criteria are scored in this order; their weights sum to 100.
	Criteria []Criterion `json:"criteria"`
}

// Metric names, identical to the ScoringTemplate API enum.
const (
	MetricTalkRatio        = "talkRatio"        // percent of all spoken time that is the rep's, 0–100
	MetricLongestMonologue = "longestMonologue" // seconds, the rep's longest uninterrupted turn
	MetricQuestionRate     = "questionRate"     // questions asked by the rep per 10 minutes
	MetricFillerWordRate   = "fillerWordRate"   // filler words per 100 words spoken by the rep
	MetricKeywordCoverage  = "keywordCoverage"  // percent of the criterion's keywords the rep said, 0–100
	MetricWordsPerMinute   = "wordsPerMinute"   // the rep's words per minute of the rep's speaking time
	MetricInteractivity    = "interactivity"    // speaker switches per minute of meeting
	MetricPatience         = "patience"         // mean seconds between another speaker's end and the rep's start
)

// Criterion is one scored line of the rubric.
type Criterion struct {
	// Name identifies the criterion; unique in the template.
	Name string `json:"name"`
	// Description tells the rep what good looks like.
	Description string `json:"description,omitempty"`
	// Weight in the overall score, 1–100.
	Weight int `json:"weight"`
	// Metric is one of the Metric constants.
	Metric string `json:"metric"`
	// Min is the lowest value that scores 100; nil for no lower bound.
	Min *float64 `json:"min,omitempty"`
	// Max is the highest value that scores 100; nil for no upper bound.
	Max *float64 `json:"max,omitempty"`
	// Keywords the rep should say; only for MetricKeywordCoverage.
	Keywords []string `json:"keywords,omitempty"`
}

// Rep says which participant is the sales rep being coached. Either field may
// be empty; see SelectRep for the rule.
type Rep struct {
	// ID is the rep's SpeakerID, when known.
	ID string `json:"id,omitempty"`
	// Name is the rep's display name, when known.
	Name string `json:"name,omitempty"`
}
