package replica

// behind refreshes Status.Behind without a step (tests).
func (r *Replica) Behind() { r.behind() }
