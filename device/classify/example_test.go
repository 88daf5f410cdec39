package classify_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/loyalty-terminal/loyalty/device"
	"github.com/loyalty-terminal/loyalty/device/classify"
)

func Example() {
	c, _ := classify.New(classify.Options{
		Members:  []classify.MemberPattern{{Name: "club", Prefix: "990", Length: 16, Check: classify.CheckLuhn}},
		Controls: map[string]string{"*TOTAL*": "TOTAL"},
	})
	for _, code := range []string{"4006381333931", "9901234567890120", "*TOTAL*", "4111111111111111"} {
		r, err := c.Classify(device.SymUnknown, code)
		if errors.Is(err, device.ErrNotMemberCard) {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println(strings.TrimSpace(fmt.Sprint(r.Kind, " ", r.Code, " ", r.Action)))
	}
	// Output:
	// item 4006381333931
	// member 9901234567890120
	// control *TOTAL* TOTAL
	// refused: not a member card: payment card number (16 digits)
}
