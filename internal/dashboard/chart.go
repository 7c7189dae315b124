package dashboard

import (
	"fmt"
	"time"
)

// The chart is an inline SVG of fixed size, so that nothing moves when it
// renders: one bar per hour of the last day, delivered below, failed on top.
const (
	chartBuckets = 24
	chartWidth   = 720
	chartHeight  = 140
	chartTop     = 12 // room for the max label
	chartBottom  = 20 // room for the time labels
)

// Bucket counts the deliveries created in one hour.
type Bucket struct {
	Start      time.Time
	OK, Failed int
}

// Bar is one bucket drawn: two stacked rectangles.
type Bar struct {
	X, W                   int
	OKY, OKH, FailY, FailH int
	Title                  string
}

// Label is a text on the chart.
type Label struct {
	X, Y   int
	Text   string
	Anchor string
}

// Chart is everything the template draws.
type Chart struct {
	Width, Height, Base int
	// Top and Plot are the plot area's top and height.
	Top, Plot int
	Bars      []Bar
	Labels    []Label
	Max       int
	Empty     bool
}

// newChart scales buckets into bars.
func newChart(buckets []Bucket, now time.Time) Chart {
	c := Chart{Width: chartWidth, Height: chartHeight, Base: chartHeight - chartBottom, Top: chartTop}
	c.Plot = c.Base - c.Top
	for _, b := range buckets {
		if t := b.OK + b.Failed; t > c.Max {
			c.Max = t
		}
	}
	c.Empty = c.Max == 0
	plot := c.Base - chartTop
	slot := chartWidth / len(buckets)
	for i, b := range buckets {
		bar := Bar{X: i*slot + 1, W: slot - 2}
		if c.Max > 0 {
			bar.OKH = b.OK * plot / c.Max
			bar.FailH = b.Failed * plot / c.Max
			// A non-zero count stays visible.
			if b.OK > 0 && bar.OKH == 0 {
				bar.OKH = 1
			}
			if b.Failed > 0 && bar.FailH == 0 {
				bar.FailH = 1
			}
		}
		bar.OKY = c.Base - bar.OKH
		bar.FailY = bar.OKY - bar.FailH
		bar.Title = fmt.Sprintf("%s–%s UTC: %d delivered, %d failed", b.Start.UTC().Format("Jan 2 15:04"), b.Start.Add(statsWindow/chartBuckets).UTC().Format("15:04"), b.OK, b.Failed)
		c.Bars = append(c.Bars, bar)
	}
	c.Labels = []Label{
		{X: 0, Y: chartHeight - 4, Text: "−24 h", Anchor: "start"},
		{X: chartWidth / 2, Y: chartHeight - 4, Text: "−12 h", Anchor: "middle"},
		{X: chartWidth, Y: chartHeight - 4, Text: "now (" + now.UTC().Format("15:04") + " UTC)", Anchor: "end"},
	}
	if c.Max > 0 {
		c.Labels = append(c.Labels, Label{X: 0, Y: chartTop - 2, Text: fmt.Sprintf("%d / h", c.Max), Anchor: "start"})
	} else {
		c.Labels = append(c.Labels, Label{X: chartWidth / 2, Y: chartTop + c.Plot/2, Text: "No deliveries in the last 24 hours", Anchor: "middle"})
	}
	return c
}
