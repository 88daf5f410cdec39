package apiclient

// Field is the value at path in a decoded JSON object (as
// json.Unmarshal into map[string]any gives it), nil when any step is
// missing or not an object: Field(status, "sync", "summary").
func Field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}
