# Per-step cost: 21 trivial RUN steps, each writing one small file (a fresh layer per step).
# The per-step cost is (run-steps-21 − run-steps-1) ÷ 20.
ARG BASE
FROM ${BASE}
COPY marker.txt /marker.txt
RUN echo 1 > /step-1
RUN echo 2 > /step-2
RUN echo 3 > /step-3
RUN echo 4 > /step-4
RUN echo 5 > /step-5
RUN echo 6 > /step-6
RUN echo 7 > /step-7
RUN echo 8 > /step-8
RUN echo 9 > /step-9
RUN echo 10 > /step-10
RUN echo 11 > /step-11
RUN echo 12 > /step-12
RUN echo 13 > /step-13
RUN echo 14 > /step-14
RUN echo 15 > /step-15
RUN echo 16 > /step-16
RUN echo 17 > /step-17
RUN echo 18 > /step-18
RUN echo 19 > /step-19
RUN echo 20 > /step-20
RUN echo 21 > /step-21
