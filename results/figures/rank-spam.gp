# accuracy vs LoRA rank r, task spam (Table 6), sweep table6-rank
# written by `loralab plot`; edit and rerun in this directory: gnuplot rank-spam.gp
$d0 << EOD
1 0.8389074693 0.01341271953
2 0.8416945373 0.009798436918
4 0.8377926421 0.001672240803
8 0.8494983278 0.01697139058
64 0.8138238573 0.03603410559
EOD
$d1 << EOD
1 0.8690078038 0.01498810441
2 0.872909699 0.006688963211
4 0.8790412486 0.01341271953
8 0.8857302118 0.007540551426
64 0.886845039 0.007723749421
EOD
$d2 << EOD
1 0.8946488294 0.008361204013
2 0.8901895206 0.003481046822
4 0.8957636566 0.008248967997
8 0.9046822742 0.008848666592
64 0.9030100334 0.01170568562
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
