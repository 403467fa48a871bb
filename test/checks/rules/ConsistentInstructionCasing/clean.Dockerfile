from scratch
label a=1
