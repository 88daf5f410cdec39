package hq

import "time"

// SetBeforeApply installs a hook run before each commit (tests only).
func (s *Service) SetBeforeApply(f func(n int)) { s.beforeApply = f }

// AppendMessage is appendMessage (tests only).
var AppendMessage = appendMessage

// SetRebaseClock sets the clock that measures Options.RebaseEvery (tests
// only).
func (s *Service) SetRebaseClock(now func() time.Time) { s.rebaseClock.Store(&now) }
