# RUN-heavy: ten RUN steps, each writing 5 MB and 500 small files and deleting some of the
# previous step's (whiteouts). late.txt sits halfway, so changing it re-runs the last five;
# final.txt is the last step, so changing it re-makes one small COPY layer on top of ten RUN layers.
ARG BASE
FROM ${BASE}
COPY seed.txt /seed.txt
RUN mkdir -p /work/s1 && dd if=/dev/urandom of=/work/d1.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 1 file $i" > /work/s1/f$i; done
RUN mkdir -p /work/s2 && dd if=/dev/urandom of=/work/d2.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 2 file $i" > /work/s2/f$i; done && rm -f /work/s1/f1* && rm /work/d1.bin
RUN mkdir -p /work/s3 && dd if=/dev/urandom of=/work/d3.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 3 file $i" > /work/s3/f$i; done && rm -f /work/s2/f1*
RUN mkdir -p /work/s4 && dd if=/dev/urandom of=/work/d4.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 4 file $i" > /work/s4/f$i; done && rm -f /work/s3/f1* && rm /work/d3.bin
RUN mkdir -p /work/s5 && dd if=/dev/urandom of=/work/d5.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 5 file $i" > /work/s5/f$i; done && rm -f /work/s4/f1*
COPY late.txt /late.txt
RUN mkdir -p /work/s6 && dd if=/dev/urandom of=/work/d6.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 6 file $i" > /work/s6/f$i; done && rm -f /work/s5/f1* && rm /work/d5.bin
RUN mkdir -p /work/s7 && dd if=/dev/urandom of=/work/d7.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 7 file $i" > /work/s7/f$i; done && rm -f /work/s6/f1*
RUN mkdir -p /work/s8 && dd if=/dev/urandom of=/work/d8.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 8 file $i" > /work/s8/f$i; done && rm -f /work/s7/f1* && rm /work/d7.bin
RUN mkdir -p /work/s9 && dd if=/dev/urandom of=/work/d9.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 9 file $i" > /work/s9/f$i; done && rm -f /work/s8/f1*
RUN mkdir -p /work/s10 && dd if=/dev/urandom of=/work/d10.bin bs=1M count=5 2>/dev/null && for i in $(seq 1 500); do echo "step 10 file $i" > /work/s10/f$i; done && rm -f /work/s9/f1* && rm /work/d9.bin
COPY final.txt /final.txt
CMD ["ls", "/work"]
