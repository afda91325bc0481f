# bench-table.awk: medians of tools/bench.sh's "run allocator key value" rows.
#   awk -v allocs="kheap glibc ..." -f tools/bench-table.awk raw   Markdown table
#   awk -v allocs=... -v mode=plot -f tools/bench-table.awk raw    ratios.dat for gnuplot
# A ratio is value / mimalloc's value from the same run, and the median is
# taken over runs. In plot mode rows where higher is better are inverted, so
# every bar reads "cost relative to mimalloc".

function median(s,    n, v, i, j, t) {
	n = split(s, v, " ")
	if (n == 0)
		return ""
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}

function fmt(x) {
	if (x == "")
		return "–"
	if (x >= 1000 || x == int(x))
		return sprintf("%.0f", x)
	if (x >= 100)
		return sprintf("%.1f", x)
	return sprintf("%.3g", x)
}

function row(key, label, unit, better,    i, a, m, r, cells) {
	if (!((key, "kheap") in vals) && !((key, "mimalloc") in vals))
		return
	cells = ""
	for (i = 1; i <= na; i++) {
		a = A[i]
		m = median(vals[key, a])
		r = median(ratio[key, a])
		cells = cells " | " fmt(m) (r != "" && a != "mimalloc" ? " (" sprintf("%.2f", r) ")" : "")
	}
	printf "| %s | %s | %s%s |\n", label, unit, better, cells
}

function plotrow(key, label, better,    i, a, r, s, n, v, j, line) {
	if (!((key, "mimalloc") in vals))
		return
	line = label
	for (i = 1; i <= na; i++) {
		a = A[i]
		s = ratio[key, a]
		if (better == "higher") { # invert each run's ratio, then take the median
			n = split(s, v, " ")
			s = ""
			for (j = 1; j <= n; j++)
				s = s " " (v[j] > 0 ? 1 / v[j] : 1e6)
		}
		r = median(s)
		line = line " " (r == "" ? "NaN" : r)
	}
	print line
}

{
	run = $1; a = $2; key = $3; v = $4
	vals[key, a] = vals[key, a] " " v
	byrun[run, key, a] = v
	runs[run] = 1
	keys[key] = 1
}

END {
	na = split(allocs, A, " ")
	for (run in runs)
		for (key in keys) {
			mm = byrun[run, key, "mimalloc"]
			if (mm == "" || mm + 0 == 0)
				continue
			for (i = 1; i <= na; i++)
				if ((run, key, A[i]) in byrun)
					ratio[key, A[i]] = ratio[key, A[i]] " " byrun[run, key, A[i]] / mm
		}
	if (mode == "plot") {
		printf "workload"
		for (i = 1; i <= na; i++)
			printf " %s", A[i]
		print ""
		plotrow("W1", "W1", "lower"); plotrow("W2", "W2", "lower")
		plotrow("W3", "W3", "lower"); plotrow("W4", "W4", "lower")
		plotrow("W5rss", "W5(RSS)", "lower")
		plotrow("W6.alloc.p9999", "W6a-p99.99", "lower"); plotrow("W6.free.p9999", "W6f-p99.99", "lower")
		plotrow("W7", "W7", "lower"); plotrow("W8", "W8", "higher")
		plotrow("W9a.t2", "W9-W1-2t", "higher"); plotrow("W9b.t2", "W9-W3-2t", "higher")
		exit
	}
	printf "| workload | unit | better"
	for (i = 1; i <= na; i++)
		printf " | %s", A[i]
	print " |"
	printf "|---|---|---"
	for (i = 1; i <= na; i++)
		printf "|--:"
	print "|"
	row("W1", "W1 alloc(32)+free", "ns/pair", "lower")
	row("W2", "W2 1000 × 16–64 B, free in order", "ns/op", "lower")
	row("W3", "W3 random slots, 8–256 B", "ns/step", "lower")
	row("W4", "W4 random slots, 16 B–64 KiB", "ns/step", "lower")
	row("W5", "W5 footprint / peak live bytes", "ratio", "lower")
	row("W5rss", "W5 the same by RSS, every allocator", "ratio", "lower")
	row("W6.alloc.p50", "W6 alloc p50", "cycles", "lower")
	row("W6.alloc.p9999", "W6 alloc p99.99", "cycles", "lower")
	row("W6.alloc.max", "W6 alloc max", "cycles", "lower")
	row("W6.free.p50", "W6 free p50", "cycles", "lower")
	row("W6.free.p9999", "W6 free p99.99", "cycles", "lower")
	row("W6.free.max", "W6 free max", "cycles", "lower")
	row("W7", "W7 aligned 64/4096, 100–8000 B", "ns/op", "lower")
	row("W8", "W8 lean small ops, 1 thread", "M ops/s", "higher")
	row("W9a.t1", "W9 W1 × 1 thread", "M pairs/s", "higher")
	row("W9a.t2", "W9 W1 × 2 threads", "M pairs/s", "higher")
	row("W9a.t4", "W9 W1 × 4 threads", "M pairs/s", "higher")
	row("W9a.scale2", "W9 W1 2 threads / 1 thread", "×", "higher")
	row("W9b.t1", "W9 W3 × 1 thread", "M steps/s", "higher")
	row("W9b.t2", "W9 W3 × 2 threads", "M steps/s", "higher")
	row("W9b.t4", "W9 W3 × 4 threads", "M steps/s", "higher")
	row("W9b.scale2", "W9 W3 2 threads / 1 thread", "×", "higher")
	row("W10", "W10 4 object types, 64–2048 B", "ns/step", "lower")
	row("W10c", "W10 through kheap_cache (kheap only)", "ns/step", "lower")
}
