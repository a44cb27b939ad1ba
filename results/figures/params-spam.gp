# accuracy vs trainable parameters, task spam (Figure 2), sweep fig2-methods
# written by `loralab plot`; edit and rerun in this directory: gnuplot params-spam.gp
$d0 << EOD
843008 0.9234113712 0.007515787644
EOD
$d1 << EOD
5760 0.8959866221 0.007789842608
EOD
$d2 << EOD
2048 0.8658862876 0.01053644415
EOD
$d3 << EOD
16384 0.8725752508 0.006411468064
24576 0.8722408027 0.01489139589
EOD
$d4 << EOD
35968 0.9204013378 0.005366824928
EOD
$d5 << EOD
9760 0.8996655518 0.005288089733
EOD
$d6 << EOD
32768 0.9197324415 0.004729811245
EOD
baseline = 0.6906354515
set arrow from graph 0, first baseline to graph 1, first baseline nohead dt 2 lc rgb 'gray40'
$baseline << EOD
2048 0.6906354515
843008 0.6906354515
EOD
set title 'accuracy vs trainable parameters, task spam (Figure 2)'
set xlabel 'trainable parameters'
set ylabel 'accuracy'
set logscale x
set grid
set key outside right top
set offsets 0, 0, graph 0.05, graph 0.05
set terminal pngcairo noenhanced size 960,600 font ',11'
set output 'params-spam.png'
plot $d0 using 1:2:3 with yerrorlines pt 7 title 'ft', $d1 using 1:2:3 with yerrorlines pt 7 title 'bitfit', $d2 using 1:2:3 with yerrorlines pt 7 title 'prefix_embed', $d3 using 1:2:3 with yerrorlines pt 7 title 'prefix_layer', $d4 using 1:2:3 with yerrorlines pt 7 title 'adapter_h', $d5 using 1:2:3 with yerrorlines pt 7 title 'adapter_l', $d6 using 1:2:3 with yerrorlines pt 7 title 'lora Wq,Wk,Wv,Wo', $baseline using 1:2 with lines dt 2 lc rgb 'gray40' title 'baseline'
set terminal svg noenhanced size 960,600 dynamic font 'sans,11'
set output 'params-spam.svg'
replot
unset output
