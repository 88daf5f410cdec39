package device_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/device"
)

func TestReasonLabel(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{device.ErrNotMemberCard, "not_member_card"},
		{fmt.Errorf("magstripe: %w (bank layout)", device.ErrNotMemberCard), "not_member_card"},
		{fmt.Errorf("x: %w", device.ErrBadCheckDigit), "bad_check_digit"},
		{device.ErrDeviceBusy, "busy"},
		{device.ErrBounce, "bounce"},
		{errors.New("4111111111111111"), "other"},
		{nil, "other"},
	}
	for _, tt := range tests {
		if got := device.ReasonLabel(tt.err); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[device.Kind]string{device.KindItem: "item", device.KindReject: "reject", 0: "unknown", 99: "unknown"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}
