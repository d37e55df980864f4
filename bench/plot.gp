# Plots echo throughput against connections (64-byte messages) from the CSV
# bench/run_echo.py writes:
#   python3 bench/run_echo.py --csv=bench/results/echo.csv
#   gnuplot -e "csv='bench/results/echo.csv'; png='bench/results/echo.png'" bench/plot.gp
# (Debian: apt-get install gnuplot-nox)
if (!exists("csv")) csv = 'bench/results/echo.csv'
if (!exists("png")) png = 'bench/results/echo.png'
set terminal pngcairo size 1400,420 font ",10"
set output png
set datafile separator ","
set logscale x
set xtics (1, 64, 1000)
set xlabel "connections (64-byte messages)"
set ylabel "messages/s"
set format y "%.0s%c"
set key top left
set grid ytics
label(p) = p eq "separate_cores" ? "separate cores" : \
           p eq "one_core" ? "one core" : "one core (batch)"
rows(p) = int(system(sprintf("awk -F, '$1 == \"%s\" && $2 == 64' %s | wc -l", label(p), csv)))
# One panel per placement the CSV has (a --placements run has fewer).
present = ""
do for [placement in "separate_cores one_core one_core_batch"] {
  if (rows(placement) > 0) { present = present." ".placement }
}
if (words(present) == 0) { print "no 64-byte rows in ".csv; exit status 1 }
set multiplot layout 1,words(present)
do for [placement in present] {
  set title "server and netbench on ".label(placement)
  plot for [server in "epoll conet asio"] \
      sprintf("< awk -F, '$1 == \"%s\" && $2 == 64 && $4 == \"%s\"' %s", label(placement), server, csv) \
      using 3:5 with linespoints lw 2 title server
}
unset multiplot
