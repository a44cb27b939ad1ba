# accuracy vs trainable parameters, task spam (Figure 2), sweep fig2-methods
# written by `loralab plot`; edit and rerun in this directory: gnuplot params-spam.gp
$d0 << EOD
843008 0.9172240803 0.008277169679
EOD
$d1 << EOD
5760 0.7842809365 0.009459622491
EOD
$d2 << EOD
512 0.7474916388 0.004729811245
2048 0.7031772575 0.003547358434
EOD
$d3 << EOD
1024 0.7533444816 0.001182452811
4096 0.7775919732 0.002364905623
EOD
$d4 << EOD
7184 0.7976588629 0.009459622491
35968 0.8553511706 0.01300698092
EOD
$d5 << EOD
9760 0.7817725753 0.02010169779
EOD
$d6 << EOD
2048 0.8904682274 0.008277169679
16384 0.8946488294 0.009459622491
131072 0.9005016722 0.001182452811
EOD
baseline = 0.6906354515
set arrow from graph 0, first baseline to graph 1, first baseline nohead dt 2 lc rgb 'gray40'
set title 'accuracy vs trainable parameters, task spam (Figure 2)'
set xlabel 'trainable parameters'
set ylabel 'accuracy'
set logscale x
set grid
set key outside right top
set offsets 0, 0, graph 0.05, graph 0.05
set terminal pngcairo noenhanced size 960,600 font ',11'
set output 'params-spam.png'
plot $d0 using 1:2:3 with yerrorlines pt 7 title 'ft', $d1 using 1:2:3 with yerrorlines pt 7 title 'bitfit', $d2 using 1:2:3 with yerrorlines pt 7 title 'prefix_embed', $d3 using 1:2:3 with yerrorlines pt 7 title 'prefix_layer', $d4 using 1:2:3 with yerrorlines pt 7 title 'adapter_h', $d5 using 1:2:3 with yerrorlines pt 7 title 'adapter_l', $d6 using 1:2:3 with yerrorlines pt 7 title 'lora', NaN with lines dt 2 lc rgb 'gray40' title 'baseline'
set terminal svg noenhanced size 960,600 dynamic font 'sans,11'
set output 'params-spam.svg'
replot
unset output
