#!/bin/bash
# open-loop tail experiment: goscache standalone variants vs the floor, 16 clients
B=/tmp/gsb
cd /tmp/exp
pkill -f "$B/goscache" ; pkill -f "floor-serve"; sleep 0.5
rm -f *.sock
$B/goscache -listen unix:/tmp/exp/gs.sock -log /tmp/exp/gs.log &
GOMAXPROCS=1 $B/goscache -listen unix:/tmp/exp/gs1.sock -log /tmp/exp/gs1.log &
$B/goscache -keep-dead -listen unix:/tmp/exp/gskd.sock -log /tmp/exp/gskd.log &
$B/scachebench -floor-serve /tmp/exp/fl.sock -floor-status=false &
sleep 1
for spec in ${SPECS:-reuse:10000 fresh:9000}; do
  labels=${spec%%:*} rate=${spec##*:}
  echo "== $labels $rate cycles/s"
  $B/scachebench -target goscache=/tmp/exp/gs.sock -target gomaxprocs1=/tmp/exp/gs1.sock -target keepdead=/tmp/exp/gskd.sock -target floor=/tmp/exp/fl.sock \
    -labels $labels -clients 16 -rate $rate -rounds ${ROUNDS:-3} -duration 3s -warmup 1s 2>&1 | awk 'NR==1 || /^[a-z]/ {print $1,$2,$4,$(NF)}'
done
pkill -f "$B/goscache" ; pkill -f "floor-serve"
