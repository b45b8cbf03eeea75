# Training of the model of every ensemble whose sampler uses one (normalizing flows, the networks of
# self-learning HMC; those trained offline read the chains of train.source). The checkpoint
# is not a declared output (Snakemake would delete it before a rerun): a killed job,
# rerun, continues from its last checkpoint. The declared output is the manifest written
# when training is complete (with the ESS and acceptance on fresh samples).


rule train:
    input:
        unpack(train_inputs),
    output:
        manifest=f"{EXP}/models/{{ensemble}}.json",
    params:
        checkpoint=model_checkpoint,
        source=train_source_args,
        code=TRAIN_CODE,
    threads: JOB_THREADS
    resources:
        gpu=gpu,
        runtime=720,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP}/logs/train_{{ensemble}}.log",
    shell:
        "lqcdml train --config {input.config:q} --ensemble {wildcards.ensemble:q} "
        "--checkpoint {params.checkpoint:q} --manifest {output.manifest:q} {params.source:q} "
        "threads={threads} --gpus {resources.gpu} --progress lines > {log:q} 2>&1"
