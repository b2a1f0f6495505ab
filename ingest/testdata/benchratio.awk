# Reads `go test -bench 'EndToEnd|WriterOnly' -cpu 1,2,…` output of the ingest
# package, passes it through and prints, per -cpu value, end-to-end CPU
# efficiency as a ratio to the writer alone (same records, same run) and the
# end-to-end wall-clock scaling over -cpu 1, against the issue's targets.
# Per benchmark and -cpu it keeps the best run over -count runs.
# BenchmarkScalingDistinct's scaling-x (drains at GOMAXPROCS 1 and 2 that
# follow each other, the median of its rounds) is printed against the
# target too: on a machine whose speed drifts it is the figure to trust.
{ print }
/^BenchmarkScalingDistinct/ {
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "scaling-x") sx = $i
		if ($(i+1) == "scaling-min") smin = $i
		if ($(i+1) == "scaling-max") smax = $i
	}
}
/^Benchmark(EndToEndDistinct|WriterOnlyDistinct)/ {
	name = $1; procs = 1; c = 0; pb = ""; r = 0
	if (match(name, /-[0-9]+$/)) { procs = substr(name, RSTART + 1) + 0; name = substr(name, 1, RSTART - 1) }
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "msgs/cpu-s" && $i + 0 > eff[name, procs]) eff[name, procs] = $i + 0
		if ($(i+1) == "msgs/s") r = $i + 0
		if ($(i+1) == "cores") c = $i + 0
		if ($(i+1) == "p-busy") pb = $i + 0
		if ($(i+1) == "broker-cpu-ns/op" && (broker[name, procs] == "" || $i + 0 < broker[name, procs])) broker[name, procs] = $i + 0
	}
	if (r > rate[name, procs]) { rate[name, procs] = r; cores[name, procs] = c; busy[name, procs] = pb }
	seen[procs] = 1
}
END {
	n = 0
	for (p in seen) cpus[++n] = p + 0
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (cpus[j] < cpus[i]) { t = cpus[i]; cpus[i] = cpus[j]; cpus[j] = t }
	if (n == 0) { print "benchratio: no EndToEndDistinct/WriterOnlyDistinct result"; exit 1 }
	printf "\nend-to-end on distinct records (the Runner's process; kfake runs in another):\n"
	base = rate["BenchmarkEndToEndDistinct", cpus[1]]
	for (i = 1; i <= n; i++) {
		p = cpus[i]; e = eff["BenchmarkEndToEndDistinct", p]; w = eff["BenchmarkWriterOnlyDistinct", p]
		line = sprintf("  -cpu %d: %.0f msgs/s on %.2f cores", p, rate["BenchmarkEndToEndDistinct", p], cores["BenchmarkEndToEndDistinct", p])
		if (busy["BenchmarkEndToEndDistinct", p] != "") line = line sprintf(" (%.2f of the Ps busy)", busy["BenchmarkEndToEndDistinct", p])
		line = line sprintf(", %.0f msgs/cpu-s", e)
		if (w > 0) line = line sprintf(" = %.2f of writer-only %.0f msgs/cpu-s (target >= 0.80) %s", e / w, w, (e / w >= 0.8 ? "ok" : "MISSED"))
		print line
		if (broker["BenchmarkEndToEndDistinct", p] != "") printf "           the broker process took %.0f cpu-ns per message besides (not counted above)\n", broker["BenchmarkEndToEndDistinct", p]
		if (i > 1 && base > 0) {
			s = rate["BenchmarkEndToEndDistinct", p] / base
			printf "           wall-clock scaling over -cpu %d: %.2fx", cpus[1], s
			if (p == 2 && cpus[1] == 1) printf " (target >= 1.7x) %s", (s >= 1.7 ? "ok" : "MISSED")
			printf "\n"
		}
	}
	if (sx != "") printf "\nalternating drains (BenchmarkScalingDistinct): wall-clock scaling GOMAXPROCS 1 -> 2 %.2fx (median of rounds, %.2f-%.2f) (target >= 1.7x) %s\n", sx, smin, smax, (sx >= 1.7 ? "ok" : "MISSED")
}
