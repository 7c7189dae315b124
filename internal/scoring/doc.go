// Package scoring turns a meeting transcript and a ScoringTemplate rubric into
// a coaching report. It is pure and deterministic: the same input always gives
// the same report, byte for byte. The scorer never reads the clock; the caller
// passes the generation time in.
//
// # Choosing the rep
//
// SelectRep picks the participant being coached, trying in order:
//
//  1. "id": the first segment whose SpeakerID equals Rep.ID (when Rep.ID is set);
//  2. "name": the first segment whose SpeakerName equals Rep.Name, compared
//     case-insensitively after trimming spaces (when Rep.Name is set);
//  3. "host": the first segment marked IsHost;
//  4. otherwise ErrNoRep.
//
// # Turns, words and durations
//
// Segments are taken in the order the provider gave them. Segments without
// words are ignored, then consecutive segments of the same SpeakerID are merged
// into one turn. A word ends at End, or at Start when End is 0 (or below
// Start). A turn lasts from its earliest word start to its latest word end;
// the meeting lasts from the earliest word start to the latest word end over
// all speakers. A "word" for counting purposes is a token that still has a
// letter or digit after punctuation is stripped, so a lone "?" or "-" is not a
// word. Matching (fillers, keywords) lowercases tokens and strips every rune
// that is not a letter or digit, so "Pricing," matches "pricing" and
// "follow-up" matches "followup"; phrases match consecutive words inside one
// rep turn, never across another speaker's turn.
//
// # Metrics (for the rep, units as in the Metric constants)
//
//   - talkRatio: rep speaking seconds / all speakers' speaking seconds × 100.
//   - longestMonologue: the rep's longest turn in seconds.
//   - questionRate: rep questions per 10 minutes of meeting. A question is a
//     rep word ending in "?" (ignoring trailing "!", quotes and closing
//     brackets, so "really?!" counts); a punctuation-only "?" token directly
//     after a question word adds nothing, so "ok? ?" is one sentence.
//   - fillerWordRate: rep filler words per 100 rep words. Fillers: um, uh,
//     erm, ah, like, basically, actually, literally, and the two-word phrases
//     "you know", "sort of", "kind of" (a phrase counts once). Matching is
//     lexical, so "do you know the price" also counts "you know".
//   - keywordCoverage: percent of the criterion's distinct keywords the rep
//     said at least once; the evidence lists the ones found and missing.
//   - wordsPerMinute: rep words / rep speaking minutes.
//   - interactivity: speaker switches (turn boundaries) per minute of meeting.
//   - patience: mean gap in seconds between the end of another speaker's turn
//     and the start of the rep turn that directly follows it; overlaps
//     (negative gaps) count as 0. With no such turn the value is 0 and the
//     evidence says so.
//
// A metric whose denominator is zero (no speech, no rep words, a meeting of
// zero length) is 0, and its evidence says why. Values are rounded to two
// decimals before scoring, so a reader can recompute every score from the
// report.
//
// # Scores
//
// Each criterion scores 0–100 against its target range [Min, Max], either end
// optional: a value inside the range scores 100. Below Min > 0 it scores
// 100 × (1 − (Min − v)/Min), and above Max > 0 it scores
// 100 × (1 − (v − Max)/Max), both clamped to [0, 100]: the score falls
// linearly with the distance relative to the bound, reaching 0 at v = 0 or
// v = 2 × Max. When the bound crossed is 0, any distance scores 0. No bounds
// score 100. Criterion scores are rounded to one decimal (math.Round(x*10)/10).
// The overall score is the mean of the rounded criterion scores weighted by
// Weight (weights sum to 100), rounded to one decimal; the report passes when
// the overall score is at least PassingScore.
//
// # Report ids
//
// ReportID derives the id from the subject (meeting or roleplay id) and the
// template's namespace and name. The template generation is deliberately left
// out: a replay of the pipeline after someone edits the template must update
// the same report, not create a second one.
package scoring
