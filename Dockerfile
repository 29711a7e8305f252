# A Dask worker image for `grade batch --scheduler`: the kit installed, its data generated,
# bubblewrap for the sandbox. Build it from the same commit as the instructor's kit:
#
#   docker build -t fslab-worker .
#   docker run --rm --network host --security-opt seccomp=unconfined \
#       --security-opt apparmor=unconfined fslab-worker tcp://scheduler:8786 --nthreads 2
#
# bubblewrap needs user namespaces inside the container (the two --security-opt above, or
# --privileged); without them the worker still grades, with "isolation": "reduced" in every
# scorecard: student code then runs as the unprivileged `fslab-student` (made below), which
# is why the worker itself stays root, as Gradescope's run_autograder does (a worker running
# as an ordinary user would have student code run as that same user, able to change the
# kit and the oracle cache). The instructor's client checks the image's grader version,
# suites and data against its own before grading anything. (Not built in this kit's CI: its
# machines have no Docker engine.)
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /kit
COPY pyproject.toml README.md course.toml Makefile ./
COPY grader/ grader/
COPY exercises/ exercises/
COPY solutions/ solutions/
COPY feature_repo/ feature_repo/
ARG SEED=42
RUN pip install --no-cache-dir . \
    && grade setup --seed "$SEED" \
    && useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin fslab-student

ENV FSLAB_KIT=/kit FSLAB_CACHE_DIR=/root/.cache/feature-store-lab
ENTRYPOINT ["dask", "worker", "--nworkers", "1", "--local-directory", "/tmp/dask"]
CMD ["--help"]
