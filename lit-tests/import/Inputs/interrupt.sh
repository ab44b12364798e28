#!/bin/sh
# interrupt.sh MODEL DIR: starts `nmc compile MODEL … -o DIR`, sends SIGINT as soon as the staging
# folder DIR.tmp-PID appears (so the output is being written), and prints the exit status and
# what is left next to DIR.
model=$1; dir=$2
nmc compile "$model" --quant int4 -o "$dir" > /dev/null 2> "$dir.stderr" &
pid=$!
i=0
while [ $i -lt 3000 ]; do
  if ls -d "$dir".tmp-* > /dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2> /dev/null; then break; fi
  sleep 0.05
  i=$((i + 1))
done
kill -INT $pid 2> /dev/null
wait $pid
echo "status $?"
ls -d "$dir"* | sed "s|^$dir|DIR|"
