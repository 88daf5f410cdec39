// Package phone turns phone numbers as people type them ("0501234567",
// "+972 50-123 4567", "(050) 123 4567") into one form, E.164
// ("+972501234567"), so a member enrolled with one spelling is found with
// any other. Numbers without a country code are read in the store's
// region (config register.phone_region). Parsing and validation use
// github.com/nyaruka/phonenumbers, a port of Google's libphonenumber with
// its per-country metadata, which we would otherwise have to keep up to
// date ourselves.
//
// Members wraps a ledger so that every alias lookup, enrolment and
// consent by phone goes through the normaliser, while card numbers and
// other aliases are looked up exactly as given.
package phone
