// Package magstripe parses the output of serial magnetic stripe readers
// (track 1 "%...?", track 2 ";...?", track 3 ";...?" back to back, ended by
// CR) and extracts a member number. Payment cards (bank track layout,
// Luhn-valid card numbers) are refused with device.ErrNotMemberCard; their
// numbers are never returned, and the error type formats safely under every
// fmt verb.
package magstripe
