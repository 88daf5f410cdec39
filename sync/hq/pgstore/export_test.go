package pgstore

// OpenAt is Open with the schema taken to version n only (a database as
// an older release left it).
func OpenAt(dsn string, n int) (*Store, error) { return open(dsn, nil, n) }
