package benchcmp

// RepeatsFor exposes Repeats' arithmetic to the tests, which cannot
// control how long a real op takes on a loaded machine.
var RepeatsFor = repeatsFor
