package main

import (
	"fmt"
	"io"
	"strconv"

	"gannet/engine/admin"
)

// printWarmup prints the warm-up allowances of the queue summary.
func printWarmup(tw io.Writer, rows []admin.WarmupEntry) {
	fmt.Fprintln(tw, "WARM-UP SOURCE\tPROVIDER\tSTART\tDAY\tALLOWANCE\tUSED\tREMAINING")
	n := func(v int) string {
		if v < 0 {
			return "unlimited"
		}
		return strconv.Itoa(v)
	}
	for _, w := range rows {
		start, day := w.Start, strconv.Itoa(w.Day)
		if start == "" {
			start, day = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", w.Source, w.Provider, start, day, n(w.Allowance), w.Used, n(w.Remaining))
	}
}
