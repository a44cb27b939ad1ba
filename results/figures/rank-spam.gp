# accuracy vs LoRA rank r, task spam (Table 6), sweep table6-rank
# written by `loralab plot`; edit and rerun in this directory: gnuplot rank-spam.gp
$d0 << EOD
1 0.889632107 0.005912264057
8 0.8856187291 0.01220850318
64 0.8963210702 0.008608386406
EOD
$d1 << EOD
1 0.908361204 0.006625957444
2 0.9066889632 0.00362533167
4 0.9163879599 0.00373924411
8 0.9100334448 0.007699574872
64 0.9170568562 0.007250663341
EOD
$d2 << EOD
1 0.916722408 0.009265481724
2 0.9127090301 0.008054578314
4 0.918729097 0.009204922371
8 0.9197324415 0.004729811245
64 0.9224080268 0.002536078744
EOD
set title 'accuracy vs LoRA rank r, task spam (Table 6)'
set xlabel 'rank r'
set ylabel 'accuracy'
set logscale x 2
set xtics (1, 2, 4, 8, 64)
set xrange [0.666667:96]
set grid
set key outside right top
set offsets 0, 0, graph 0.05, graph 0.05
set terminal pngcairo noenhanced size 960,600 font ',11'
set output 'rank-spam.png'
plot $d0 using 1:2:3 with yerrorlines pt 7 title 'Wq', $d1 using 1:2:3 with yerrorlines pt 7 title 'Wq,Wv', $d2 using 1:2:3 with yerrorlines pt 7 title 'Wq,Wk,Wv,Wo'
set terminal svg noenhanced size 960,600 dynamic font 'sans,11'
set output 'rank-spam.svg'
replot
unset output
