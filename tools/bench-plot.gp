# bench-plot.gp: the plots of tools/bench.sh. gnuplot -e "dir='build/bench'" tools/bench-plot.gp
#   ratios.png      cost of each allocator relative to mimalloc, per workload (lower is better)
#   w6-latency.png  W6: fraction of alloc/free calls slower than x cycles (log-log)
allocs = "kheap kheap-inline kheap-locked glibc jemalloc mimalloc tcmalloc"

set terminal pngcairo size 1200,560 font "sans,11"
set output dir."/ratios.png"
set title "Cost relative to mimalloc in the same run (medians; lower is better; throughput rows inverted)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.125:*]
set ylabel "× mimalloc"
set grid ytics
set key top left horizontal
set xtics rotate by -30
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
plot for [i=2:8] dir."/ratios.dat" using i:xtic(1) title columnheader(i)

unset arrow 1
set output dir."/w6-latency.png"
set terminal pngcairo size 1200,520 font "sans,11"
set multiplot layout 1,2 title "W6: W4's sequence, one call at a time between lfence;rdtsc (reference cycles)"
set style data linespoints
set logscale xy 10
set format x "%g"
set format y "%g"
set xlabel "cycles"
set ylabel "fraction of calls slower"
set yrange [*:0.6]
set xrange [10:*]
set key top right vertical
set xtics norotate
set grid xtics ytics
set title "alloc"
plot for [a in allocs] dir."/w6-".a.".txt" using (strcol(1) eq "alloc" ? $2 : NaN):3 title a pt 7 ps 0.4
set title "free"
plot for [a in allocs] dir."/w6-".a.".txt" using (strcol(1) eq "free" ? $2 : NaN):3 title a pt 7 ps 0.4
unset multiplot
