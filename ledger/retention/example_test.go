package retention_test

import (
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

func ExamplePrompt() {
	at := func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	member := retention.Member{ID: "m1", Purchases: []retention.Purchase{
		{SaleID: "r1-1", At: at("2026-05-01"), Amount: 1200},
		{SaleID: "r1-7", At: at("2026-05-11"), Amount: 900},
	}}
	// No summary from head office: the member's own rhythm (every 10 days)
	// decides. Fifty days away is more than three intervals: sleeping.
	fmt.Println(retention.Prompt(retention.PromptInput{Member: member, AsOf: at("2026-06-30")}, nil))
	// Output: Welcome back after 50 days: offer the welcome-back reward
}

func ExampleComputeUplift() {
	// The source documents' example.
	u, _ := retention.ComputeUplift(retention.UpliftInput{Customers: 150, PurchasesPerYear: 4, PerPurchase: 20000, ShareBP: 1500})
	fmt.Printf("+%d a year on %d (%d.%02d%%)\n", u.ExtraRevenue, u.BaseRevenue, u.GrowthBP/100, u.GrowthBP%100)
	// Output: +450000 a year on 12000000 (3.75%)
}

func ExampleRhythmOf() {
	days := []retention.Day{100, 110, 130, 140}
	r := retention.RhythmOf(days)
	fmt.Printf("%d purchase days, mean %.1f, median %.0f days\n", r.PurchaseDays, r.MeanInterval, r.MedianInterval)
	// Output: 4 purchase days, mean 13.3, median 10 days
}
