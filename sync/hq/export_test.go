package hq

// SetBeforeApply installs a hook run before each commit (tests only).
func (s *Service) SetBeforeApply(f func(n int)) { s.beforeApply = f }

// AppendMessage is appendMessage (tests only).
var AppendMessage = appendMessage
