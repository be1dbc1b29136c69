"""The NLMM engine. Importing it first chooses how torch's idle OpenMP threads wait (engine.threads)."""
from engine.threads import prefer_passive_openmp_wait

prefer_passive_openmp_wait()
