"""Running a command as an array of jobs (JOB=1:N), Kaldi run.pl style: CLI parsing and back-ends."""
