// Package metricstest reads values out of a Prometheus registry for tests.
package metricstest

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Sample is one series' value: a counter's or gauge's value, or a
// histogram's count and sum.
type Sample struct {
	Value float64
	Count uint64
	Sum   float64
}

// Get returns the series of the metric name whose labels include labels
// (given as name, value pairs), or a zero Sample when there is none.
func Get(t testing.TB, g prometheus.Gatherer, name string, labels ...string) Sample {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return Sample{Value: m.Counter.GetValue()}
			case m.Gauge != nil:
				return Sample{Value: m.Gauge.GetValue()}
			case m.Histogram != nil:
				return Sample{Count: m.Histogram.GetSampleCount(), Sum: m.Histogram.GetSampleSum()}
			}
		}
	}
	return Sample{}
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if have[pairs[i]] != pairs[i+1] {
			return false
		}
	}
	return true
}

// Names lists the metric names in g, for failure messages.
func Names(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
