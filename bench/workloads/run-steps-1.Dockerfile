# Per-step baseline: one trivial RUN (base extraction, runtime set-up, one snapshot). The per-step
# cost is (run-steps-21 − run-steps-1) ÷ 20.
ARG BASE
FROM ${BASE}
COPY marker.txt /marker.txt
RUN echo 1 > /step-1
