package shaping

import (
	"regexp"

	"gannet/smtpwire"
)

// Greylisting (the receiver defers the first attempt of an unknown
// client, sender and recipient, and accepts a retry after some minutes)
// is not pushback against a rate: the site says nothing about how fast it
// may be sent to, only that this recipient must be tried again later. So a
// greylisting reply does not cut the adaptive rate (isThrottle), does not
// count as a deferral in backoff mode's deferral rate (observeMode) or in
// self-tuning (observeTune), and the delivery loop retries such a
// recipient after [queue] greylist_retry rather than the retry schedule.

// greylistWords is the wording of greylisting replies: Postgrey's
// "Greylisted, see …", milter-greylist's "Greylisting in action, please
// come back in 00:05:00", greylistd's "Please try again later".
var greylistWords = regexp.MustCompile(`(?i)gr[ae]y[ -]?list`)

// greylistLater is the wording of a greylisting reply that does not say
// the word, with a greylisting enhanced code (4.7.1 or 4.2.0).
var greylistLater = regexp.MustCompile(`(?i)(try|come|check) (again|back) (later|in)|please retry`)

// rateWords is the wording of rate limits (builtinThrottle without its
// "try again later", which greylisting shares): a reply saying it is not
// greylisting, whatever its code.
var rateWords = regexp.MustCompile(`(?i)rate|too many|throttl|exceeded|slow down|volume|quickly`)

// Greylisting reports whether a reply defers a recipient because of
// greylisting: a 450 or 451 (RFC 5321 §4.2.3: the mailbox is
// unavailable, or a local error; a 421 closes the session and is a site's
// pushback) whose text says greylisting ("greylisted", "grey-listing",
// "graylist"), or whose enhanced code is 4.7.1 (RFC 3463 §3.8, delivery
// not authorized) or 4.2.0 (§3.3, mailbox status) with a "try again
// later" or "come back later" and no word of a rate ("rate", "too many",
// "throttled", …).
func Greylisting(r smtpwire.Reply) bool {
	if r.Code != 450 && r.Code != 451 {
		return false
	}
	text := r.String()
	if greylistWords.MatchString(text) {
		return true
	}
	return (r.Enhanced == "4.7.1" || r.Enhanced == "4.2.0") && greylistLater.MatchString(text) && !rateWords.MatchString(text)
}
