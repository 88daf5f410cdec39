package scanner

import (
	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/classify"
	"github.com/loyalty-terminal/loyalty/device/frame"
	"github.com/loyalty-terminal/loyalty/device/serialdev"
)

// New returns a scanner reading o.Path and classifying with c.
func New(o serialdev.Options, c *classify.Classifier) (*serialdev.Reader, error) {
	return serialdev.New(o, Handler(c))
}

// Handler classifies frames with c.
func Handler(c *classify.Classifier) serialdev.Handler {
	return func(f frame.Frame) device.Event {
		r, err := c.Classify(f.Symbology, f.Data)
		if err != nil {
			return device.Event{Kind: device.KindReject, Symbology: f.Symbology, Reason: err}
		}
		return device.Event{Kind: r.Kind, Symbology: r.Symbology, Payload: r.Code, Action: r.Action, Item: r.Item}
	}
}
