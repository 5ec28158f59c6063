// Package vendorreplay replays a recorded set of vendor payloads through
// the real source connectors, for `sluice demo` and for tests that need
// more than one page of realistic data.
//
// Two halves:
//
//   - API answers the pollers' requests (Salesforce query, HubSpot search,
//     Greenhouse Harvest, Lever) over the recorded records the way each
//     vendor documents it: the cursor filter, the sort order, the page
//     shape and pagination (nextRecordsUrl, after, Link, next), auth, and
//     rate-limit headers. Because it filters by the cursor rather than
//     serving pages in order, a poller that restarts from its checkpoint
//     is served only the records at or after its cursor (the ones at the
//     cursor again, which the poller drops as seen), as from the vendor.
//   - Deliverer posts the recorded webhook bodies (SendGrid, Mailgun,
//     SES via SNS) to the webhooks source, signed the way each provider
//     signs, with keys it makes for the run, and retries a delivery the
//     source did not take, as the providers do.
//
// The recorded set itself (recorded/, embedded) is described in
// recorded/README.md.
package vendorreplay
