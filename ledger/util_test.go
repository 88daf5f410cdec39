package ledger_test

import "strconv"

func fmtUint(u uint64) string { return strconv.FormatUint(u, 10) }
