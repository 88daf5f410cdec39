package hqstore

// PrepareMissing returns events with every event prepared (Prepare): as
// given when each already carries its own preparation, else a copy in
// which those that did not are prepared, so the caller's slice is left as
// it is. A backend that reads an event's decoded form before ApplyIn
// (TouchesCredited for its locks) calls it first, so an event is decoded
// once whether or not its caller prepared it.
func PrepareMissing(events []Event) []Event {
	var out []Event
	var ps []prepared
	for i, e := range events {
		if p := e.prepared; p != nil && sameEvent(p.o.e, e) {
			continue
		}
		if out == nil {
			out = append(make([]Event, 0, len(events)), events...)
			ps = make([]prepared, len(events))
		}
		e.prepared = nil // as Prepare: the op keeps no stale preparation alive
		ps[i].o, ps[i].err = decodeNew(e)
		out[i].prepared = &ps[i]
	}
	if out == nil {
		return events
	}
	return out
}
