package dmverity

import (
	"bytes"
	"encoding/json"
	"errors"
)

// jsonStrict decodes one JSON object into v; fields pvr may add later are
// ignored, trailing data is not.
func jsonStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the object")
	}
	return nil
}
