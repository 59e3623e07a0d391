//! `modelwatch check`: says whether a data directory is a sound store, without changing it.

use anyhow::bail;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The data directory to look at
    #[arg(long, default_value = "./modelwatch-data")]
    data: PathBuf,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let report = modelwatch_store::check_data_dir(&args.data)?;
    println!("{}", report.dir);
    for f in &report.findings {
        println!("  {f}");
    }
    match report.damage {
        None => {
            println!("sound: modelwatch opens it");
            Ok(())
        }
        Some(found) => bail!(
            "damaged: {found}\nmodelwatch refuses to start over it. Restore the directory from a \
             backup (docs/operations.md); keep this copy until the restore is verified."
        ),
    }
}
