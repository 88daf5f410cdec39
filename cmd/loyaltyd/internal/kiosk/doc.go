// Package kiosk serves the customer-facing kiosk page: a self-contained
// HTML/JS/CSS page (embedded with go:embed) that shows the checkout view
// live through server-sent events, for an HDMI or touch screen running
// Chromium in kiosk mode on the register.
//
// The page is translated (English, Hebrew right-to-left, Bulgarian); the
// language follows the attached member's language, then the page's ?lang=
// parameter, then the configured default. A clear badge shows when head
// office is unreachable. The Hub keeps the latest view so a page that
// (re)connects is shown the current state at once.
package kiosk
